// Validates FHIR R4 resources (JSON files) offline with the HAPI FHIR instance validator:
// the base R4 profiles, their value sets and the common code systems, all from the jars.
//
//   java -cp "<cache>/hapi-fhir-8.8.0/libs/*" Validate.java FILE.json...
//
// Prints one line per message ("<file>: <SEVERITY> <location> <message>") and exits 1 when any
// message is an error or fatal, 0 otherwise.
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import java.nio.file.Files;
import java.nio.file.Path;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;

public class Validate {
  public static void main(String[] args) throws Exception {
    FhirContext ctx = FhirContext.forR4();
    ValidationSupportChain chain = new ValidationSupportChain(
        new DefaultProfileValidationSupport(ctx),
        new SnapshotGeneratingValidationSupport(ctx),
        new InMemoryTerminologyServerValidationSupport(ctx),
        new CommonCodeSystemsTerminologyService(ctx));
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    module.setNoTerminologyChecks(false);
    FhirValidator validator = ctx.newValidator().registerValidatorModule(module);
    int errors = 0;
    for (String file : args) {
      ValidationResult result = validator.validateWithResult(Files.readString(Path.of(file)));
      for (SingleValidationMessage m : result.getMessages()) {
        System.out.println(file + ": " + m.getSeverity() + " " + m.getLocationString() + " "
            + m.getMessage());
        if (m.getSeverity() == ResultSeverityEnum.ERROR || m.getSeverity() == ResultSeverityEnum.FATAL) {
          errors++;
        }
      }
    }
    System.exit(errors == 0 ? 0 : 1);
  }
}
